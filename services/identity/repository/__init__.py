"""Every SQL statement of the identity service, one module per table; rows come back as Structs."""
