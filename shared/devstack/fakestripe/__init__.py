"""fakestripe: localstripe plus the few Stripe resources it lacks, for dev and tests only.

localstripe (PyPI) is a stateful fake of Stripe's core API: customers, payment methods,
plans, subscriptions, invoices, events. It has no prices, Checkout Sessions, billing-portal
sessions or billing meters, and it ignores `Idempotency-Key`. This package runs localstripe's
own aiohttp app in the same process and registers, on the same router and the same store:

- `/v1/prices` — a recurring price is also stored as a localstripe plan with the same id,
  so localstripe's subscriptions and invoices can use it (Stripe treats the two ids alike);
- `/v1/checkout/sessions` and `/v1/billing_portal/sessions`;
- `/v1/billing/meters`, `/v1/billing/meter_events` and meter event summaries;
- replay of `Idempotency-Key` on every POST (same key, same parameters -> same response);
- `customer.subscription.updated` events after a subscription update;
- test helpers under `/v1/test_helpers/` (Stripe's namespace for them) that do what a
  customer or Stripe's clock would: complete a checkout (pay, create the subscription and
  its invoice), renew a subscription (payment succeeds or fails), announce a trial's end.
  They deliver the events they cause, signed with Stripe's scheme, to a URL given in the call.

The official `stripe` SDK talks to it unchanged (`base_addresses={"api": ...}`).
"""

from __future__ import annotations
