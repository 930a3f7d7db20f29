"""Parity between an exported model and the float Keras model it came from."""
