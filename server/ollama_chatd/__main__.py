from ollama_chatd.cli.main import main

raise SystemExit(main())
