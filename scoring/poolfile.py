"""Pure helpers of the pool file format (FORMATS.md section 1) that the importer and the offline
replay share: canonical JSON, content hashes, a prompt as text. No Django, so `scoring/` never
imports from `reviews/`."""

import hashlib

import orjson


def canonical_json(value) -> bytes:
    """Compact JSON with sorted keys: equal content gives equal bytes, whatever the key order."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def sha256_hex(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def prompt_text(prompt) -> str:
    """A prompt flattened to text: a chat transcript becomes 'role: content' paragraphs."""
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(f"{turn['role']}: {turn['content']}" for turn in prompt)
