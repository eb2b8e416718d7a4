"""What goes out: reminders written to the outbox, the sender that delivers it, the SMS reply road."""
