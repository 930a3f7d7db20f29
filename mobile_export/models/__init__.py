"""Model builders and readers for pretrained weights."""
