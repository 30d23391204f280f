"""Everything Ringline services share: message models, subjects, the codec and the bus runtime."""
