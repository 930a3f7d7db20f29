"""Converters from a Keras model to deployable files, one module per target."""
