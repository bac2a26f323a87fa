"""smm-panel: an SMM panel speaking API v2 to resellers and to upstream providers."""
