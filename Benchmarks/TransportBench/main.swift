print("transport benchmark: not written yet")
