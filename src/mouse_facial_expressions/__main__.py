from mouse_facial_expressions.cli import main

raise SystemExit(main())
