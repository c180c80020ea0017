"""The HTTP collector (``reelroi collect``, SPEC 7): producers POST events, ad platforms call click-monitor links."""
