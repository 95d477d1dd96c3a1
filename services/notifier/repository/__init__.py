"""Every SQL statement of the notifier, by area: contacts projection, emails, webhooks."""
