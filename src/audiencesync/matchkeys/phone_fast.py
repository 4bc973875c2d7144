phone_fast = None
