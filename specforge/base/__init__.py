"""What every package stands on: located errors, atomic writes, the registry, default filling, joining Ray."""
