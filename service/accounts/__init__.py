"""Web app accounts: who signs in, how their password is kept, what each role may see."""
