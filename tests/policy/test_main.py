"""python -m policy (policy/__main__.py): the command names its subcommands and hands the
rest of the line to the one named."""
from policy import __main__ as cli


def test_without_a_known_command_it_lists_them_and_exits_2(capsys):
  for argv in ([], ['frobnicate'], ['--help']):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert '``ope``' in err and '``bid-sim``' in err


def test_the_rest_of_the_line_goes_to_the_subcommand(tmp_path, capsys):
  # Both subcommands refuse a missing input with their own message and exit code 2.
  assert cli.main(['ope', '--logs', str(tmp_path / 'none.csv'), '--policy', 'uniform']) == 2
  assert 'no such file' in capsys.readouterr().err
  assert cli.main(['bid-sim', '--campaign', '7', '--data', str(tmp_path / 'none')]) == 2
  assert 'no such folder (give --data)' in capsys.readouterr().err
