from distilfuse.cli.main import console

console()
