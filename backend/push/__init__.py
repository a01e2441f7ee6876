"""Push notifications: the phones' device registry and APNs delivery of "sync now" nudges through the job queue."""
