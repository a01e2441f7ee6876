"""Task campaigns that operations push to the field, and the work items (target x assignee) BDs follow."""
