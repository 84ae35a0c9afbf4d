"""Trading service: listings, auctions of every mechanism, order books, trades, 统一交易标识码."""
