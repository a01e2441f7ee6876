"""Evidence: judging a claim to be somewhere (a check-in at a merchant, an arrival at a job's site).

Below the field domains: visits and jobs call it, tracking will too. `service` judges a claim and keeps its
evidence; `positions` answers "the user's prior positions" (the speed check's previous fix) behind a small
interface, today from the user's check-ins and check-outs, later from tracking fixes as well.
"""
