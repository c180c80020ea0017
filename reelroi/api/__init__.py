"""The HTTP service: ROI and commission API, token auth, and the pages."""
