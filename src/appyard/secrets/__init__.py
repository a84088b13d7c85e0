"""Secret references in param and build-arg values, and the providers that resolve them."""
