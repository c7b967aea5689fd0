"""The Gradio app of gan-face (`python app.py`)."""
