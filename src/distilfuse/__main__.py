from distilfuse.cli.main import main

raise SystemExit(main())
