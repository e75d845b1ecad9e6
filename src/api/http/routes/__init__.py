"""One router per resource; ``common`` holds what several of them share."""
