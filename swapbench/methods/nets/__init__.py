"""Networks shared by several methods (one implementation each)."""
