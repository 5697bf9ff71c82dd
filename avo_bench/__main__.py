from avo_bench.cli import main

raise SystemExit(main())
