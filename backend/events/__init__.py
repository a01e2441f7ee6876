"""Business events from integrations (signings, recharges, orders) and their attribution to campaigns."""
