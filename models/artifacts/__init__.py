"""Released model artifacts (skops files and their model card), shipped as package data."""
