"""What users see in a browser: plots, the listening page (`report`, `demo`) and the web app."""
