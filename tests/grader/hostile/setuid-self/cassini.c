/* exit 42: running with another euid than the uid that started it (a setuid bit that
 * worked); 43 otherwise. */
#include <stdio.h>
#include <unistd.h>
int main(void)
{
    printf("uid=%d euid=%d\n", (int)getuid(), (int)geteuid());
    return geteuid() != getuid() ? 42 : 43;
}
