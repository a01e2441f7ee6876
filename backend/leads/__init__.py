"""Leads: who holds a merchant (the holder, the claim) and the one rule of which merchants belong on a phone.

Below the field domains: pois (the merchant view, the sync collection, adding a merchant) and tasks (targeting a
merchant's holder, reassigning, the bumps) call it; the lead pool will too.
"""
