"""Reading clinical text: which findings a sentence asserts, denies, only suspects, or gives to a relative."""
