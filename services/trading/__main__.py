from services.trading.app import main

main()
