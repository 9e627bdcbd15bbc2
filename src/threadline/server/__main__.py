from threadline.server.cli import main

main()
