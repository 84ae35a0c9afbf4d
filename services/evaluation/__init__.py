"""Enterprise comprehensive evaluation (企业综合评价, 亩均论英雄).

`domain/` holds the pure rules (policy documents, scoring, classification, measures);
`policies/` ships the default methodology documents of domain §7.
"""
