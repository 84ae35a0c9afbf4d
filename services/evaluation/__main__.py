from services.evaluation.app import main

main()
