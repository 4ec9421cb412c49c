"""After a search: which parameters mattered (importance), the figures (plots), and the zoom
stage run on its own over a sweep directory (zoom_stage)."""
