"""Tools that fit and measure the answer decision (``qa/decide``): collect candidate
features on public questions, fit the model, report its calibration."""
