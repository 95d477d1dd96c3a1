"""Auth primitives shared by identity (issuer), the gateway (verifier) and every upstream."""
