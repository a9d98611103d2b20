"""The chat page (Gradio) and its HTML rendering."""
