"""Examples of plugins: a decoder and a support of your own, swept beside the built-ins
(README, "Your own decoder or support")."""
