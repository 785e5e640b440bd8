"""People: accounts and roles, the admins' people page, and campaign membership."""
