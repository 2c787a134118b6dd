from mmseq.cli import main

raise SystemExit(main())
