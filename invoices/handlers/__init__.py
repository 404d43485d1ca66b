"""The steps of the billing pipeline, in the order `settings.BILLING_PIPELINES` lists them."""
