/* Four processes of 400 MB each, all alive at once: exit 42 when they all fit. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void)
{
    int ok = 0;
    for (int i = 0; i < 4; i++) {
        if (fork() == 0) {
            size_t n = 400u << 20;
            char *p = malloc(n);
            if (!p)
                _exit(1);
            memset(p, 1, n);
            sleep(2);
            _exit(p[n - 1] == 1 ? 0 : 1);
        }
    }
    for (int i = 0; i < 4; i++) {
        int st;
        if (wait(&st) > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
            ok++;
    }
    return ok == 4 ? 42 : 43;
}
