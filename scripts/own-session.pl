#!/usr/bin/env perl
# own-session.pl CMD [ARG...]: run CMD in a session of its own and exit with its status.
#
# flow.sh's teardown must outlive a terminal closed mid-way: the terminal's HUP reaches the
# flow's whole process group, and Node and docker, which the teardown's bb-cleanup runs,
# would die of it. A new session has no terminal to hang up. setsid(1) is Linux-only; this
# is for the rest (macOS, the BSDs), where perl ships with the system. Perl, unlike Node,
# keeps the signals the flow ignores ignored from its first instruction, so no HUP or TERM
# can end it on its way to setsid(2).
#
# This wrapper stays in the flow's group and waits, so the flow still waits for the
# teardown: HUP, TERM and INT are ignored here, as the flow ignores them (or defers INT)
# while it tears down. The command gets them back at their defaults.
use strict;
use warnings;
use POSIX ();

$SIG{$_} = 'IGNORE' for qw(HUP TERM INT);
if (!@ARGV || $ARGV[0] eq '--help' || $ARGV[0] eq '-h') {
  print STDERR "usage: own-session.pl CMD [ARG...]  (runs CMD in a new session, exits with its status)\n";
  exit(@ARGV ? 0 : 2);
}
my $pid = fork;
die "own-session: cannot fork: $!\n" unless defined $pid;
if ($pid == 0) {
  # A forked child is never a process group leader, so setsid(2) cannot fail with EPERM.
  POSIX::setsid() or do { print STDERR "own-session: setsid: $!\n"; POSIX::_exit(127) };
  $SIG{$_} = 'DEFAULT' for qw(HUP TERM INT);
  { no warnings 'exec'; exec { $ARGV[0] } @ARGV; }
  print STDERR "own-session: cannot run $ARGV[0]: $!\n";
  POSIX::_exit(127);
}
while (waitpid($pid, 0) == -1) {
  die "own-session: cannot wait for $ARGV[0]: $!\n" unless $!{EINTR};
}
exit($? & 127 ? 128 + ($? & 127) : $? >> 8);
