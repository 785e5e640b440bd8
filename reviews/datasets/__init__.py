"""Dataset versions: immutable, hashed exports of final answers (FORMATS.md section 3)."""

# RQ jobs queued before the re-layout name "reviews.datasets.build_dataset"; a worker resolves it here.
from reviews.datasets.export import build_dataset  # noqa: F401
