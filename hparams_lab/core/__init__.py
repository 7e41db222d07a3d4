"""The vocabulary every other room speaks: spaces, trials and their statuses, metrics and
which way each is better, user errors. Stdlib only; imports no other room."""
