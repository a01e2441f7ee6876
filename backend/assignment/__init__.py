"""Assignment: who takes a job (candidates, the choice, the pool, dispatch profiles).

Rule-based assignment grows here."""
