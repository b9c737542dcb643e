"""Pure ActivityPub protocol code: no server, no SQL, no network; the clock is passed in."""
