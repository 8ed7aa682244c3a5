"""Optional C speed-ups built by setup.py; each has a pure Python twin that is used without them."""
