"""Work orders: a bad review's lifecycle, its deadlines, the SMS callback, and the users who act on them."""
